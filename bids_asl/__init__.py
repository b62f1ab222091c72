"""bids_asl: arterial spin labelling MRI to calibrated CBF, as a BIDS App.

Importing the package loads no nipype, pybids or nibabel.
"""

__version__ = '0.1.0'
