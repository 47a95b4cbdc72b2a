"""Content Security Policy for every response.

Django 5.2 has no built-in CSP. The policy allows scripts and styles from
this origin only, so no inline script can run even if remote text were ever
rendered unescaped. There is deliberately no ``form-action``: Chromium applies
it to the redirect that follows a form POST, which would block the hand-off
to an authorization server.
"""

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", POLICY)
        return response
