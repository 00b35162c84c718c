"""The line protocol: what telnet, openssl s_client and the bundled client speak."""
