"""The data sources: batches of in-memory arrays, and Dask chunks."""
