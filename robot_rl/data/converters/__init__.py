"""Dataset converters: robomimic HDF5 (both ways) and MCAP / rosbag2 import."""
