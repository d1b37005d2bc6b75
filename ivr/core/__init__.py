"""The ground floor: settings, storage and migrations, masking, logs, the line vocabulary."""
