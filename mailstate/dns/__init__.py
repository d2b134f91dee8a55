"""Each domain's DNS, as data: the records mail needs (``records``), printed as a zone file
fragment, octoDNS YAML or JSON (``formats``), and checked against live DNS (``check``)."""
