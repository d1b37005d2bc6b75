"""Security properties: masking, CSV export, metrics labels, ticket model trust."""
