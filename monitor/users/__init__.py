"""People who use the console and API: accounts, roles, sign-in and tokens."""
