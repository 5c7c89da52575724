"""Peer task queues measured by bench/run.py, one module each, plus shared machinery."""
