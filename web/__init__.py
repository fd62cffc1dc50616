"""The DMZ tier: the HTTPS web server (h11) and the browser client it serves."""
