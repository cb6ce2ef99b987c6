"""The living twin: a saved twin that moves with its patient's diary.

One update transaction for every front end (:mod:`.transaction`), retraining
(:mod:`.retraining`), drift checks (:mod:`.drift`), sequential tests (:mod:`.sequential`) and
the monitor walk (:mod:`.monitor`).
"""
