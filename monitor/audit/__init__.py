"""The audit log: sign-ins, refused permissions and administrative changes, never edited."""
