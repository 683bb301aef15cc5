-- The monitoring store lives next to Dagster's instance, in its own database.
CREATE DATABASE watchkeeper OWNER dagster;
