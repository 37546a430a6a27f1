"""Model servers: their definitions, the health checker, and the runner that ties them to services."""
