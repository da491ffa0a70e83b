"""The pure polars core: reading, cleaning and the contract rules. No Dagster here."""
