"""Listener pre-flight: prove that each declared callback URL can receive, from here.

For every distinct declared URL (and set of credentials), concurrently: DNS (every
address public, by the validation's rules), the port (one ThingSpace calls), a TCP
connection, TLS (chain, host name, expiry, protocol) and one HTTP probe. Needs the
configuration's values and positions (``config``), never ThingSpace itself.

``model`` holds the results, ``network`` the one seam to the outside (resolver and
connector, replaced in-process by tests only), ``probe`` the steps for one URL,
``runner`` the targets and the bounded concurrency.
"""

# Nothing is imported here: the parser reads the defaults from ``model`` on every start.
