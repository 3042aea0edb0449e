"""Events and catalog in: schemas, readers, validation, cleaning, interaction data, splits."""
