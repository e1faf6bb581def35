"""OpenFlow 1.3 and Ethernet as plain values: frames parsed and built, messages encoded, streams framed, replies matched to requests. Imports nothing else of the controller."""
