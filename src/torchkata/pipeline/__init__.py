"""The pipeline's own library: catalog, config, seeding, atomic files, timing, tracking, reports."""
