"""ccn: a content-centric networking node."""
