"""Raster sources, catalogues, filters, the tile grid, box assignment and the tile store."""
