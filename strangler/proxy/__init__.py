"""The strangler proxy: weighted, sticky routing from the route table to monolith and services."""
