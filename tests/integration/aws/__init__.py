"""Contract tests of the AWS adapters over HTTP against a moto server."""
