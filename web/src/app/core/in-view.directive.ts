import { Directive, ElementRef, OnDestroy, inject, output } from '@angular/core';

/** Emits each time its element comes into view (half of it at least). */
@Directive({ selector: '[appInView]' })
export class InViewDirective implements OnDestroy {
  readonly appInView = output<void>();
  private readonly observer = new IntersectionObserver(
    (entries) => {
      if (entries.some((e) => e.isIntersecting)) this.appInView.emit();
    },
    { threshold: 0.5 },
  );

  constructor() {
    this.observer.observe(inject(ElementRef<Element>).nativeElement);
  }

  ngOnDestroy(): void {
    this.observer.disconnect();
  }
}
