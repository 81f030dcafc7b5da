"""SQL implementations of the domain repositories."""
