"""Connected driver sessions, independent of the transport that carries them."""
