"""The living twin: one update transaction for every front end (:mod:`.transaction`),
retraining (:mod:`.retraining`), drift checks (:mod:`.drift`), sequential tests
(:mod:`.sequential`) and the monitor walk (:mod:`.monitor`)."""
