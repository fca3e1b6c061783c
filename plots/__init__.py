"""Every figure: functions take data and return a matplotlib Figure."""
