"""The HTTP service: FastAPI app factory, routes, schemas, the web playground."""
