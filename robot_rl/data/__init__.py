"""Episode store (zarr), samplers, normalizers, replay buffers and dataset converters."""
