"""jf-pipeline: CRM flat-file exports in a landing zone -> cleaned, joined tables in DuckDB."""
