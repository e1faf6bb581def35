"""The pure core: the network picture, statistics to features, and the decisions. Takes data and an explicit `now`, returns messages to send; imports no framework and does no I/O."""
