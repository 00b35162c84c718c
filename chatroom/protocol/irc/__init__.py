"""The IRC front end: the same rooms and accounts, spoken as IRC."""
