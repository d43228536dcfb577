/*
 * clock.h — the process's clocks in the units its timeouts use.
 *
 * Deadlines and timeouts run on CLOCK_MONOTONIC (a wall-clock step never
 * cuts or stretches them); pthread_timedjoin_np and condition variables
 * initialised without a clock attribute take CLOCK_REALTIME instants.
 */
#ifndef GL_CLOCK_H
#define GL_CLOCK_H

#include <stdint.h>
#include <time.h>

uint64_t gl_monotonic_ns(void);
uint64_t gl_monotonic_ms(void);
/* The CLOCK_MONOTONIC instant `ms` milliseconds after the clock's origin. */
struct timespec gl_monotonic_at(uint64_t ms);
/* The CLOCK_REALTIME instant `ms` (>= 0) milliseconds from now. */
struct timespec gl_realtime_in(int ms);

#endif
