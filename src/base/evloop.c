/* evloop.c - epoll event loop; see evloop.h. */
#include "base/evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct evloop_entry {
    int fd;
    evloop_cb cb;
    void *opaque;
    bool dead; /* removed; freed after the batch being dispatched */
    struct evloop_entry *next;
};

int evloop_init(struct evloop *l)
{
    memset(l, 0, sizeof(*l));
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0)
        return -errno;
    l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->wakefd < 0) {
        int e = -errno;
        close(l->epfd);
        return e;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) < 0) {
        int e = -errno;
        close(l->wakefd);
        close(l->epfd);
        return e;
    }
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->cond, NULL);
    return 0;
}

static void free_list(struct evloop_entry *e)
{
    while (e) {
        struct evloop_entry *n = e->next;
        free(e);
        e = n;
    }
}

void evloop_release(struct evloop *l)
{
    free_list(l->entries);
    free_list(l->graveyard);
    l->entries = l->graveyard = NULL;
    close(l->wakefd);
    close(l->epfd);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->cond);
}

int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_cb cb, void *opaque)
{
    struct evloop_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    *e = (struct evloop_entry){.fd = fd, .cb = cb, .opaque = opaque};
    struct epoll_event ev = {.events = events, .data.ptr = e};
    pthread_mutex_lock(&l->lock);
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int err = -errno;
        pthread_mutex_unlock(&l->lock);
        free(e);
        return err;
    }
    e->next = l->entries;
    l->entries = e;
    pthread_mutex_unlock(&l->lock);
    return 0;
}

static struct evloop_entry *find(struct evloop *l, int fd)
{
    for (struct evloop_entry *e = l->entries; e; e = e->next)
        if (e->fd == fd)
            return e;
    return NULL;
}

int evloop_mod(struct evloop *l, int fd, uint32_t events)
{
    pthread_mutex_lock(&l->lock);
    struct evloop_entry *e = find(l, fd);
    int r = -ENOENT;
    if (e) {
        struct epoll_event ev = {.events = events, .data.ptr = e};
        r = epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
    }
    pthread_mutex_unlock(&l->lock);
    return r;
}

/* The loop thread may hold the entry in the batch of events it is
 * dispatching (a callback removing another fd does this), so removal only
 * marks it dead and parks it; the loop frees parked entries between batches
 * and skips dead ones. */
int evloop_del(struct evloop *l, int fd)
{
    pthread_mutex_lock(&l->lock);
    struct evloop_entry **pp = &l->entries;
    while (*pp && (*pp)->fd != fd)
        pp = &(*pp)->next;
    struct evloop_entry *e = *pp;
    int r = -ENOENT;
    if (e) {
        *pp = e->next;
        (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
        e->dead = true;
        e->next = l->graveyard;
        l->graveyard = e;
        r = 0;
    }
    pthread_mutex_unlock(&l->lock);
    return r;
}

/* Between batches: park while someone holds the loop. */
static void park_if_held(struct evloop *l)
{
    pthread_mutex_lock(&l->lock);
    while (l->hold && !atomic_load(&l->stop)) {
        if (!l->held) {
            l->held = true;
            pthread_cond_broadcast(&l->cond);
        }
        pthread_cond_wait(&l->cond, &l->lock);
    }
    l->held = false;
    pthread_mutex_unlock(&l->lock);
}

void evloop_hold(struct evloop *l)
{
    pthread_mutex_lock(&l->lock);
    l->hold++;
    uint64_t one = 1;
    (void)!write(l->wakefd, &one, sizeof(one));
    while (l->running && !l->held)
        pthread_cond_wait(&l->cond, &l->lock);
    pthread_mutex_unlock(&l->lock);
}

void evloop_unhold(struct evloop *l)
{
    pthread_mutex_lock(&l->lock);
    if (l->hold)
        l->hold--;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

void evloop_run(struct evloop *l)
{
    struct epoll_event evs[16];
    pthread_mutex_lock(&l->lock);
    l->running = true;
    pthread_mutex_unlock(&l->lock);
    while (!atomic_load(&l->stop)) {
        park_if_held(l);
        if (atomic_load(&l->stop))
            break;
        int n = epoll_wait(l->epfd, evs, 16, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < n && !atomic_load(&l->stop); i++) {
            struct evloop_entry *e = evs[i].data.ptr;
            if (!e) {
                uint64_t v;
                (void)!read(l->wakefd, &v, sizeof(v));
                continue;
            }
            /* Read under the lock: another thread may be removing it. */
            pthread_mutex_lock(&l->lock);
            bool dead = e->dead;
            pthread_mutex_unlock(&l->lock);
            if (!dead)
                e->cb(e->opaque, evs[i].events);
        }
        /* No event of this batch is left: what was removed can go. */
        pthread_mutex_lock(&l->lock);
        struct evloop_entry *g = l->graveyard;
        l->graveyard = NULL;
        pthread_mutex_unlock(&l->lock);
        free_list(g);
    }
    pthread_mutex_lock(&l->lock);
    l->running = l->held = false;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

void evloop_stop(struct evloop *l)
{
    atomic_store(&l->stop, true);
    uint64_t one = 1;
    (void)!write(l->wakefd, &one, sizeof(one));
    /* A held loop must see the stop too. */
    pthread_mutex_lock(&l->lock);
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}
