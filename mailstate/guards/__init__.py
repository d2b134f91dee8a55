"""What stops a wrong apply: safety thresholds, the reviewed checksum, and the plan cache that
must agree with a full plan or not be used."""
