"""The web front end: the page, and WebSockets carrying the line protocol or IRC."""
