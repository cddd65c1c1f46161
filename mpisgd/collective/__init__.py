"""Collective algorithms: every rank takes part in each all-reduce."""

from .sync import BucketedAllReduce

__all__ = ["BucketedAllReduce"]
