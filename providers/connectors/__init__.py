"""Data-source connectors (files, GitHub, Slack, Notion, IMAP) and the OAuth2 client."""
