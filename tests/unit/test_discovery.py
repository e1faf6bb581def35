"""The link table: both directions of a link coexist; links expire and vanish with their ports."""

from controller.core.discovery import End, LinkTable


def test_both_directions_of_a_link_coexist_and_refreshing_is_not_a_change():
    t = LinkTable()
    a, b = End(1, 2), End(2, 2)
    assert t.seen(a, b, 0.0) and t.seen(b, a, 0.0)
    assert not t.seen(a, b, 1.0)
    assert len(t) == 2


def test_a_moved_link_replaces_the_old_one():
    t = LinkTable()
    t.seen(End(1, 2), End(2, 2), 0.0)
    assert t.seen(End(1, 2), End(3, 1), 1.0)
    assert t.links() == [(End(1, 2), End(3, 1))]
    assert not t.is_link_port(End(2, 2))


def test_unconfirmed_links_expire():
    t = LinkTable()
    t.seen(End(1, 2), End(2, 2), 0.0)
    t.seen(End(2, 2), End(1, 2), 3.0)
    assert t.expire(4.0, timeout_s=3.5) == [(End(1, 2), End(2, 2))]
    assert len(t) == 1


def test_port_and_switch_removal():
    t = LinkTable()
    t.seen(End(1, 2), End(2, 2), 0.0)
    t.seen(End(2, 2), End(1, 2), 0.0)
    t.seen(End(2, 3), End(3, 1), 0.0)
    assert len(t.remove_end(End(1, 2))) == 2
    assert len(t.remove_switch(3)) == 1
    assert len(t) == 0
