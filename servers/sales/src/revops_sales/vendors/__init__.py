"""Vendor clients for Sales (Google Calendar, Gmail and others), all on IntegrationClient."""
