"""Everything between a user's files and a tile store; imports none of the other packages.

Sub-packages, one concept each (their ``__init__`` lists the public names):

- ``sources``: the raster interface and one reader per format (GDAL, FITS).
- ``catalog``: pairing CSVs with rasters, reading them into pixels, composable filters.
- ``geometry``: the window grid, object-to-tile assignment and splits (pure tensors, no I/O).
- ``store``: the tile store's format, its parallel build and reader, band statistics, tile filters.
- ``radiometry``: stretches for high-dynamic-range data and zscale limits.
- ``synthetic``: the generated data sets (crater field, star field).

``tiling.errors`` holds the project's exceptions and ``tiling.atomic`` the atomic file writes;
every package imports them.
"""
