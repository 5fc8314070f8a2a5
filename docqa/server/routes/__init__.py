"""The API's routes, a router per resource: answers, chat, jobs, documents, health."""
