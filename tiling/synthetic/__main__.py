"""``python -m tiling.synthetic``: write the default crater data set (see :mod:`tiling.synthetic.craters`)."""

from tiling.synthetic.craters import main

main()
