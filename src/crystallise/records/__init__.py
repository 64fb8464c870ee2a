"""Bibliographic records: import from the formats databases export, export job results to the
formats review tools import (``parse``, ``export``)."""
