"""Vendor clients for CS (Zendesk, Intercom, Mixpanel, SendGrid), all on IntegrationClient."""
