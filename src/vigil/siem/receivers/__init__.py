"""Network receivers that run beside the web server (the HTTP ones are routes in ``vigil.siem.api``)."""
