"""Apache Beam jobs: extraction of photo and detection records from the evidence store."""
