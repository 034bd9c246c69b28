"""The messaging core every consumer uses: envelope, topics, batch consumption with an inbox,
a transactional outbox with its relay, retries and dead letters."""
