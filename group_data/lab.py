"""Hosts of the local lab (`pyinfra-jupyter lab up`): the default hub site.

inventory/lab.py sets `network` per host (the lab's proxy and CA certificates).
"""
