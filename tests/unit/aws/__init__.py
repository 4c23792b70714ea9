"""Unit tests of the AWS adapters' pure parts."""
