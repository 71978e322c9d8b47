/* evloop.h - the VM's event loop: one epoll set, one thread.
 *
 * Device back ends and the console register file descriptors here; their
 * callbacks run on the event-loop thread. Other threads may add, modify and
 * remove entries, and stop the loop, at any time.
 */
#ifndef ARCVM_BASE_EVLOOP_H
#define ARCVM_BASE_EVLOOP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Called with the epoll events that fired on the registered fd. */
typedef void (*evloop_cb)(void *opaque, uint32_t events);

struct evloop_entry;

struct evloop {
    int epfd;
    int wakefd;               /* eventfd that interrupts epoll_wait */
    _Atomic bool stop;
    pthread_mutex_t lock;     /* protects @entries and @graveyard */
    struct evloop_entry *entries;
    struct evloop_entry *graveyard; /* removed, freed after the current batch */
    /* evloop_hold(): under @lock; @cond signals changes of all three. */
    pthread_cond_t cond;
    bool running;  /* a thread is inside evloop_run() */
    unsigned hold; /* holders waiting for or holding the loop */
    bool held;     /* the loop thread is parked for them */
};

int evloop_init(struct evloop *l);
void evloop_release(struct evloop *l);
/* Watch @fd for @events (EPOLLIN, ...). One registration per fd. */
int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_cb cb, void *opaque);
int evloop_mod(struct evloop *l, int fd, uint32_t events);
/* Stop watching @fd. Safe from any thread and from inside a callback, even
 * for an fd whose event is pending in the batch being dispatched (its
 * callback is then not called). */
int evloop_del(struct evloop *l, int fd);
/* Run callbacks until evloop_stop(). */
void evloop_run(struct evloop *l);
/* Make evloop_run() return soon; callable from any thread. */
void evloop_stop(struct evloop *l);
/* Park the loop thread between batches: on return no callback is running
 * and none runs until evloop_unhold() (a snapshot reads device state so).
 * From any thread but the loop's; returns at once if no loop is running. */
void evloop_hold(struct evloop *l);
void evloop_unhold(struct evloop *l);

#endif
