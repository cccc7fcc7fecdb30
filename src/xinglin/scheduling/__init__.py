"""Schedules, slots and bookings. A booking is an Appointment on a Slot; a slot is never booked twice."""
