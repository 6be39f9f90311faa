"""HTTP/2: frame codec, HPACK, streams and flow control, connection protocol."""
