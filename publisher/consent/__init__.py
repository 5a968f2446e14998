"""Consent that follows every copy: when a customer withdraws, when ``Consent-Until`` passes, or
when the consent's scope leaves out social accounts and the newsletter, the testimonial's
pending deliveries are cancelled and its copies already posted are taken back through each
network's API, one recorded step at a time and exactly once, as publishing is."""
